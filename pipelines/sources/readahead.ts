/**
 * Start up to `depth` loads ahead of the consumer and yield results in input order. File reads are
 * latency-bound (open, stat, read, close: four trips to the thread pool each); overlapping them keeps
 * the workers fed while memory stays bounded by `depth` records.
 */
export async function* readAhead<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  load: (item: T) => Promise<R>,
  depth = 16,
): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  for await (const item of items) {
    const p = load(item);
    // Rejections are observed when the promise reaches the head of the queue.
    p.catch(() => {});
    queue.push(p);
    if (queue.length >= depth) yield await queue.shift()!;
  }
  while (queue.length) yield await queue.shift()!;
}
