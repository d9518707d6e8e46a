"""``csv_column_sums``' compute core: every 10th column of a CSV summed exactly, in bounded memory."""
