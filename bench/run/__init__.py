"""Running a sweep: the CLI's run command, the grid of cells, executors, resume and progress."""
