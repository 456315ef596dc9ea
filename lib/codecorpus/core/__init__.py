"""The spine: config, the stage contract, the registry, the Spark session, the CLI, errors."""
