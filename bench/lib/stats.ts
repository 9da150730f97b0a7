/** Median, spread and ratios of interleaved bench samples. */
import { loadavg } from 'node:os';

export interface Figure {
  median: number;
  min: number;
  max: number;
}

export function figure(samples: number[]): Figure {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN };
}

/** `12.34 s (11.90–13.10)`: the median and the spread. */
export function formatFigure(f: Figure, digits = 2, unit = ' s'): string {
  return `${f.median.toFixed(digits)}${unit} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;
}

/** The 1-minute load average, sampled now. */
export function load1(): number {
  return loadavg()[0] ?? NaN;
}

/** Collects samples by key, in the order they were first seen. */
export class Samples {
  private readonly map = new Map<string, number[]>();

  /** `trace` sees every sample as it is taken (progress on stderr: a cut-short run still tells). */
  constructor(private readonly trace?: (line: string) => void) {}

  add(key: string, value: number): void {
    this.trace?.(`    ${key}: ${value.toFixed(2)}`);
    const list = this.map.get(key) ?? [];
    list.push(value);
    this.map.set(key, list);
  }

  get(key: string): number[] {
    return this.map.get(key) ?? [];
  }

  figure(key: string): Figure {
    return figure(this.get(key));
  }
}
