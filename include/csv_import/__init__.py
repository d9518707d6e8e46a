"""The ``csv_folder_import`` pipeline: a folder (or bucket prefix) of CSV files into one table."""
