"""The reproduction layer: methods beside Mutual-Taught, recipes, tables, plots and the `mt-repro` CLI."""
