"""What a long training run needs beyond the model: telemetry, failure handling, exact resume."""
