import { LocalPoolExecutor } from 'weftjs';
import { conformance } from './conformance/suite.js';
import { concurrencySpecifics } from './pool/concurrency.js';
import { poolSpecifics } from './pool/specifics.js';

conformance(
  'LocalPoolExecutor (threads)',
  () => new LocalPoolExecutor({ scheduler: 'threads', workers: 2 }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new LocalPoolExecutor({ scheduler: 'threads', workers: 1 }),
  },
);
poolSpecifics('threads');

// The same contract with several tasks in flight per worker.
conformance(
  'LocalPoolExecutor (threads, concurrency 4)',
  () => new LocalPoolExecutor({ scheduler: 'threads', workers: 2, concurrency: 4 }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new LocalPoolExecutor({ scheduler: 'threads', workers: 1, concurrency: 4 }),
  },
);
concurrencySpecifics('threads');
