// Loaded with `node --import` into a daemon process by test/daemon-no-icu.test.ts. Records, in the
// file ICU_PROBE_OUT, every use of what loads ICU's locale data into a process: the Intl
// constructors and the locale methods of strings, numbers and dates (with the first frames of
// the caller). The process's behaviour is unchanged. Not toLocaleLowerCase/UpperCase: V8 maps
// case in the default locale without ICU's data (no RSS measured; the AWS SDK calls it).
import { appendFileSync } from 'node:fs';

const out = process.env['ICU_PROBE_OUT'];
const record = (what: string): void => {
  if (out === undefined) return;
  const frames = (new Error().stack ?? '').split('\n').slice(3, 6).map((f) => f.trim());
  appendFileSync(out, `${JSON.stringify({ what, at: frames })}\n`);
};

const constructors = ['Collator', 'DateTimeFormat', 'DisplayNames', 'ListFormat', 'Locale', 'NumberFormat', 'PluralRules', 'RelativeTimeFormat', 'Segmenter'] as const;
for (const name of constructors) {
  const original = Intl[name] as unknown as new (...args: unknown[]) => object;
  const probed = new Proxy(original, {
    construct(target, args, newTarget) {
      record(`Intl.${name}`);
      return Reflect.construct(target, args, newTarget as new (...args: unknown[]) => object);
    },
    apply(target, thisArg, args) {
      record(`Intl.${name}`);
      return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args) as object;
    },
  });
  Object.defineProperty(Intl, name, { value: probed, writable: true, configurable: true });
}

const methods: [object, string, string][] = [
  [String.prototype, 'localeCompare', 'String'],
  [Number.prototype, 'toLocaleString', 'Number'],
  [BigInt.prototype, 'toLocaleString', 'BigInt'],
  [Date.prototype, 'toLocaleString', 'Date'],
  [Date.prototype, 'toLocaleDateString', 'Date'],
  [Date.prototype, 'toLocaleTimeString', 'Date'],
  [Array.prototype, 'toLocaleString', 'Array'],
];
for (const [proto, name, owner] of methods) {
  const original = (proto as Record<string, (...args: unknown[]) => unknown>)[name];
  if (original === undefined) continue;
  Object.defineProperty(proto, name, {
    value: function (this: unknown, ...args: unknown[]) {
      record(`${owner}.prototype.${name}`);
      return original.apply(this, args);
    },
    writable: true,
    configurable: true,
  });
}
