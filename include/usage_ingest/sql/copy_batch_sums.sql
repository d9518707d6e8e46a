COPY pg_temp.batch_sums (consumer_id, amount) FROM STDIN (FORMAT BINARY)
