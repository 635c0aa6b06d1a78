"""The REST service: sweeps submitted over HTTP run as Ray jobs and are read back from Ray and MLflow."""
