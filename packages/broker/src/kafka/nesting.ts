// Kafka's requests and responses nest partitions in topics; the broker's calls take and return
// flat lists of (topic, partition). One way there and back, in request order.

/** `entries` of `groups` flattened in order, and a way to put one result per entry back into the same shape. */
export function flatten<G, E, T>(groups: readonly G[], entriesOf: (group: G) => readonly E[], toFlat: (group: G, entry: E) => T): { flat: T[]; regroup: <R, O>(results: readonly R[], shape: (group: G, results: R[]) => O) => O[] } {
  const flat: T[] = [];
  for (const group of groups) for (const entry of entriesOf(group)) flat.push(toFlat(group, entry));
  return {
    flat,
    regroup: (results, shape) => {
      let next = 0;
      return groups.map((group) => {
        const count = entriesOf(group).length;
        const own = results.slice(next, next + count);
        next += count;
        return shape(group, own);
      });
    },
  };
}
