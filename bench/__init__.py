"""``make bench``: how fast and how lean the learning platform pipeline is, against the alternatives.

Starts its own PostgreSQL (default durability) and API simulator, runs each pipeline stage in
its own process on a simulated day, loads the same rows the ways a user might otherwise load
them, and reports times, rates, peak memory and the ratios between them; apart from the stages,
it times Airflow's own per-task start-up in a local Airflow. See ``__main__``.
"""
