"""The cache: content hashing with a stat memo, cache keys and their explanations,
the content-addressed object store and the index that ties keys to outputs."""
