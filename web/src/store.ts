// The app's state: the session (token in sessionStorage), the data of the overview, the live stream.
import { computed, reactive } from 'vue';
import { ApiError, createClient, type Client, type Job, type Mandate, type QueueStats, type SkippedMandate, type Target, type Whoami } from './api';
import { connectEvents, type BackerEvent } from './events';

const TOKEN_KEY = 'backer.token';

export const state = reactive({
  who: null as Whoami | null,
  mandates: [] as Mandate[],
  skipped: [] as SkippedMandate[],
  running: [] as Job[],
  queue: null as QueueStats | null,
  targets: [] as Target[],
  /** null until the first stream attempt ends: no banner before that. */
  connected: null as boolean | null,
  loaded: false,
  error: null as string | null,
  now: Date.now(),
});

let client: Client | null = null;
let stopStream: (() => void) | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

/** The signed-in client (null when signed out): screens call the API through it. */
export function currentClient(): Client | null {
  return client;
}

export const isAdmin = computed(() => state.who?.scope === 'admin');

export const canOperate = computed(() => state.who?.scope === 'operate' || state.who?.scope === 'admin');

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function refresh(): Promise<void> {
  if (client === null) return;
  try {
    const [list, jobs, queue, targets] = await Promise.all([client.mandates(), client.activeJobs(), client.queueStats(), client.targets()]);
    state.mandates = list.mandates;
    state.skipped = list.skipped;
    state.running = jobs;
    state.queue = queue;
    state.targets = targets.targets;
    state.loaded = true;
    state.error = null;
    state.now = Date.now();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut('Your token is no longer accepted.');
    else state.error = `Could not load: ${message(err)}`;
  }
}

/** Several events in a burst cause one re-fetch. */
function refreshSoon(): void {
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    void refresh();
  }, 250);
}

const listeners = new Set<(event: BackerEvent) => void>();

/** Screens follow the live stream: the listener gets every event; call the returned function on unmount. */
export function onBackerEvent(listener: (event: BackerEvent) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function onEvent(event: BackerEvent): void {
  for (const listener of listeners) listener(event);
  if (event.type === 'job.progress') {
    const job = state.running.find((j) => j.id === event.job_id);
    if (job) job.progress = event.progress as Job['progress'];
    else refreshSoon();
    return;
  }
  refreshSoon();
}

function startStream(token: string): void {
  stopStream?.();
  stopStream = connectEvents(token, {
    onEvent,
    onConnected(connected) {
      state.connected = connected;
      // Nothing is replayed after a reconnect: read the current state again.
      if (connected) void refresh();
    },
    onRefused() {
      signOut('Your token is no longer accepted.');
    },
  });
}

/** Validates a token (GET /v1/mandates: 401 → not accepted), reads its scope, and opens the session. */
export async function signIn(token: string): Promise<string | null> {
  const candidate = createClient(token.trim());
  try {
    await candidate.mandates();
    state.who = await candidate.whoami();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return 'Token not accepted.';
    return `Could not sign in: ${message(err)}`;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate.token);
  client = candidate;
  state.error = null;
  await refresh();
  startStream(candidate.token);
  return null;
}

export function signOut(reason: string | null = null): void {
  stopStream?.();
  stopStream = null;
  sessionStorage.removeItem(TOKEN_KEY);
  client = null;
  Object.assign(state, { who: null, mandates: [], skipped: [], running: [], queue: null, targets: [], connected: null, loaded: false, error: reason });
}

/** A token kept from earlier in this tab's session signs in again (a reload keeps the session). */
export async function resume(): Promise<void> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token !== null) {
    const failure = await signIn(token);
    if (failure !== null) signOut(failure);
  }
}

export async function backupNow(mandate: string): Promise<string | null> {
  if (client === null) return 'not signed in';
  try {
    const { job } = await client.backupNow(mandate);
    state.running = [...state.running.filter((j) => j.id !== job.id), job];
    refreshSoon();
    return null;
  } catch (err) {
    return message(err);
  }
}

setInterval(() => (state.now = Date.now()), 15_000);
