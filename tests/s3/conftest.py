"""The S3 fixtures (`s3_server`, `s3_settings`) live in tests/conftest.py, shared with tests/catalog."""
