// A bounded memo for pure, expensive decodings (X.509 parsing, public key import). Inputs are the
// exact strings from metadata, so a hit returns what a fresh decode would; the bound keeps hostile
// metadata with endless distinct keys from growing memory.
export function boundedMemo<V>(fn: (key: string) => V, max = 2048): (key: string) => V {
  const cache = new Map<string, V>();
  return (key: string) => {
    if (cache.has(key)) {
      const v = cache.get(key)!;
      cache.delete(key); // refresh recency
      cache.set(key, v);
      return v;
    }
    const v = fn(key);
    if (cache.size >= max) cache.delete(cache.keys().next().value!);
    cache.set(key, v);
    return v;
  };
}
