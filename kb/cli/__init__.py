"""The ``kb`` command line: :mod:`kb.cli.main` parses and dispatches; one module per command group."""
