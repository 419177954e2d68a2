"""The REST config API (FastAPI): thin routes around `pipelines` and `store`."""
