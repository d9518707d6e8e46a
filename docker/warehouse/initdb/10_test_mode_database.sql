-- The scratch warehouse of test-mode runs (connection learning_platform_test_db): a database of
-- its own beside `warehouse`, so that a test-mode run can never replace a real day. Run once, by
-- the image's entrypoint, when the volume is first initialised.
CREATE DATABASE warehouse_test OWNER etl;
