"""`python -m circuitdb`: the command line, for environments without the `circuitdb` script on PATH."""

from circuitdb.cli import main

main(prog_name="circuitdb")
