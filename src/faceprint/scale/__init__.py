"""Scale-out backends: PostgreSQL stores, Milvus vectors; ``local`` starts throwaway engines on
loopback for tests, benchmarks and trying it on one machine."""
