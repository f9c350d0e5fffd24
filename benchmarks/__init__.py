"""makemore's benchmarks: one harness, `python -m benchmarks SUBCOMMAND [--quick] [--threads N] [--out FILE]`,
run from the repository root. See benchmarks/__main__.py for the subcommands."""
