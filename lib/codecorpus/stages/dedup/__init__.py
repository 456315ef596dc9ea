"""Near-deduplication: shingles hashed in numpy over Arrow batches, MinHash signatures in one
rensa call per batch, LSH band buckets, connected components (on the driver when the edges are
few, else in Spark), and one deterministic survivor per cluster."""
