"""Near-deduplication: MinHash signatures (numpy, Arrow batches), LSH band buckets, connected
components in Spark, and one deterministic survivor per cluster."""
