"""The ``camcount`` command line: Typer commands that call the same actions as the API."""
