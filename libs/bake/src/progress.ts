import { BAKE_PHASES } from '@boxcar/packer';
import type { BakeReporter } from './bake.ts';

interface LayerState {
  started: number;
  step: string;
  line: string;
}

function elapsed(since: number, now = Date.now()): string {
  const seconds = Math.round((now - since) / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/**
 * Progress of a bake. On a terminal: one live line per running layer (step, elapsed, last output
 * line), redrawn in place. Elsewhere (CI, pipes): a plain line per step change.
 */
export function createReporter(out: NodeJS.WriteStream = process.stderr, tty = Boolean(out.isTTY)): BakeReporter & { close(): void } {
  const running = new Map<string, LayerState>();
  let drawn = 0;
  const width = () => (out.columns ?? 120) - 1;
  const clip = (text: string) => (text.length > width() ? `${text.slice(0, width() - 1)}…` : text);

  const erase = () => {
    if (tty && drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = () => {
    if (!tty) return;
    erase();
    for (const [layer, state] of running) {
      out.write(`${clip(`  ${layer.padEnd(10)} ${elapsed(state.started).padStart(6)}  ${state.step}`)}\n`);
      out.write(`${clip(`  ${''.padEnd(10)} ${''.padStart(6)}  \x1b[2m${state.line}\x1b[0m`)}\n`);
      drawn += 2;
    }
  };
  const print = (text: string) => {
    erase();
    out.write(`${text}\n`);
    draw();
  };
  const timer = tty ? setInterval(draw, 1000) : undefined;
  timer?.unref();

  return {
    layerStart(layer, key, log) {
      running.set(layer, { started: Date.now(), step: 'starting', line: '' });
      print(`[${layer}] baking (key ${key.slice(0, 12)}), full log: ${log}`);
    },
    step(layer, step) {
      const state = running.get(layer);
      if (!state) return;
      state.step = step;
      if (tty) draw();
      else out.write(`[${layer}] +${elapsed(state.started)} ${step}\n`);
    },
    line(layer, text) {
      const state = running.get(layer);
      if (state) state.line = text.replace(/\s+/g, ' ').trim();
    },
    layerDone(layer, result) {
      running.delete(layer);
      const phases = BAKE_PHASES.filter((phase) => result.phases[phase] !== undefined).map((phase) => `${phase} ${result.phases[phase]!.toFixed(0)} s`);
      print(`[${layer}] baked in ${result.seconds.toFixed(0)} s${phases.length ? ` (${phases.join(', ')})` : ''}${result.box ? `, published ${result.box.name} ${result.box.version}` : ''}`);
    },
    layerFailed(layer, error) {
      const state = running.get(layer);
      running.delete(layer);
      print(`[${layer}] FAILED${state ? ` after ${elapsed(state.started)}` : ''}: ${error.message}`);
    },
    message(text) {
      print(text);
    },
    close() {
      if (timer) clearInterval(timer);
      erase();
    },
  };
}
