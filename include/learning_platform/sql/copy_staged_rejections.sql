COPY learning_platform.staged_rejections (window_start, window_end, position, record, reasons) FROM STDIN (FORMAT BINARY)
