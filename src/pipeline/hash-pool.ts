import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BackerError } from '../errors.js';
import type { Digest } from '../manifests/schema.js';
import { HASH_WORKER_SOURCE } from './hash-worker-source.js';
import { reportPriorityFailure, workNice } from '../util/work-priority.js';

/**
 * A small pool of hash threads (md5 + sha256 off the event loop). Each hashed stream opens a
 * session on one thread; a thread serves up to SESSIONS_PER_WORKER sessions (one backup's steps
 * share one thread), a second thread starts only when those are taken (concurrent jobs), never
 * more than MAX_WORKERS. A thread is terminated as soon as its last session ends or is dropped:
 * nothing keeps running between jobs, and no thread outlives the work it was started for.
 */
const SESSIONS_PER_WORKER = 4;
const MAX_WORKERS = Math.max(1, Math.min(2, availableParallelism()));
const COMPONENT = 'hash';

export interface SessionHandlers {
  /** The thread hashed the `length` bytes of `slot`: the slot may be filled again. */
  onAck(slot: number, length: number): void;
  /** The thread failed or exited: the session is over. */
  onError(err: Error): void;
}

export interface HashSession {
  /**
   * Has the thread hash the first `length` bytes of `slot` (the caller must not touch the slot
   * until onAck). `memory`: the slot's shared memory, with the slot's first use only.
   */
  send(slot: number, length: number, memory?: SharedArrayBuffer): void;
  /** Resolves with the digest of every byte sent, in order. */
  end(): Promise<Digest>;
  /** Ends the session without a digest (abort); idempotent. */
  drop(): void;
}

interface Open {
  handlers: SessionHandlers;
  digest?: { resolve(d: Digest): void; reject(err: Error): void };
}

interface WorkerMessage {
  op: 'ack' | 'digest' | 'nice-failed';
  id?: number;
  slot?: number;
  length?: number;
  size?: number;
  md5?: string;
  sha256?: string;
  message?: string;
}

class HashThread {
  readonly sessions = new Map<number, Open>();
  private readonly worker: Worker;
  private closed = false;

  constructor(private readonly onIdle: (thread: HashThread) => void) {
    // No loader flags (tsx, --cpu-prof) in the thread: it runs plain CommonJS; small heap limits
    // because it only holds hash states and the buffers in flight (external memory).
    this.worker = new Worker(HASH_WORKER_SOURCE, { eval: true, execArgv: [], workerData: { nice: workNice() }, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } });
    this.worker.on('message', (m: WorkerMessage) => this.receive(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the hash thread exited with code ${code}`)));
  }

  private receive(m: WorkerMessage): void {
    if (m.op === 'nice-failed') return reportPriorityFailure('the checksum thread', m.message ?? '');
    const open = this.sessions.get(m.id ?? 0);
    if (!open) return;
    if (m.op === 'ack') {
      open.handlers.onAck(m.slot ?? 0, m.length ?? 0);
    } else if (m.op === 'digest') {
      this.sessions.delete(m.id ?? 0);
      open.digest?.resolve({ size: m.size ?? 0, md5: m.md5 ?? '', sha256: m.sha256 ?? '' });
      this.idleCheck();
    }
  }

  private fail(cause: unknown): void {
    if (this.closed) return;
    this.closed = true;
    const err = new BackerError('INTERNAL', 'the hash thread failed', { component: COMPONENT, cause });
    for (const open of this.sessions.values()) {
      open.handlers.onError(err);
      open.digest?.reject(err);
    }
    this.sessions.clear();
    this.onIdle(this);
  }

  open(id: number, handlers: SessionHandlers): HashSession {
    this.sessions.set(id, { handlers });
    this.worker.postMessage({ op: 'open', id });
    return {
      send: (slot, length, memory) => {
        if (!this.closed && this.sessions.has(id)) this.worker.postMessage({ op: 'data', id, slot, length, memory });
      },
      end: () =>
        new Promise<Digest>((resolve, reject) => {
          const open = this.sessions.get(id);
          if (!open || this.closed) return reject(new BackerError('INTERNAL', 'the hash session is closed', { component: COMPONENT }));
          open.digest = { resolve, reject };
          this.worker.postMessage({ op: 'end', id });
        }),
      drop: () => {
        if (!this.sessions.delete(id)) return;
        if (!this.closed) this.worker.postMessage({ op: 'drop', id });
        this.idleCheck();
      },
    };
  }

  private idleCheck(): void {
    if (this.sessions.size > 0 || this.closed) return;
    this.closed = true;
    this.onIdle(this);
    // terminate() resolves with the exit code once the thread is gone; nothing to wait for here.
    void this.worker.terminate();
  }
}

const threads = new Set<HashThread>();
let nextId = 1;

/** Opens a hashing session on a pool thread (starting one if needed). */
export function openHashSession(handlers: SessionHandlers): HashSession {
  let best: HashThread | undefined;
  for (const t of threads) if (!best || t.sessions.size < best.sessions.size) best = t;
  if (!best || (best.sessions.size >= SESSIONS_PER_WORKER && threads.size < MAX_WORKERS)) {
    best = new HashThread((t) => threads.delete(t));
    threads.add(best);
  }
  return best.open(nextId++, handlers);
}

/** Threads running now (tests: none is left once every stream ended or was destroyed). */
export function hashThreadCount(): number {
  return threads.size;
}
