// Preloaded into a daemon under test (NODE_OPTIONS="--expose-gc --import ..."):
// on SIGUSR2 it runs a full garbage collection and prints one JSON line with
// the heap and RSS after it, which startDaemon reads with the log lines.
// It tells memory that is held (a leak) from heap not yet collected.
process.on('SIGUSR2', () => {
  globalThis.gc();
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({ msg: 'gc-probe', heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers }) + '\n');
});
