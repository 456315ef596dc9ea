"""One module or package per pipeline stage, named after the stage (see core.registry)."""
