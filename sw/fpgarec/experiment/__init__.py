"""The experiment driver: plans, tasks, result assembly, bars, and the studies (studies/)."""
