import { describe, expect, it } from 'vitest';
import { eventText, parseMachineReadableLine, stepOf } from './machine-readable.ts';

// Lines as Packer 1.6.6 prints them with -machine-readable.
describe('packer -machine-readable lines', () => {
  it('parses a ui line whose target is empty (1.6.6) and unescapes commas and newlines', () => {
    const event = parseMachineReadableLine('1764345600,,ui,say,==> worker.qemu.worker: Uploading %!(PACKER_COMMA) then\\nrunning')!;
    expect(event).toEqual({ timestamp: 1764345600, target: '', type: 'ui', data: ['say', '==> worker.qemu.worker: Uploading , then\nrunning'] });
    expect(stepOf(eventText(event)!)).toBe('Uploading , then');
  });

  it('keeps the target of artifact and error lines', () => {
    expect(parseMachineReadableLine('1764345600,worker.qemu.worker,artifact,0,id,VM')!.target).toBe('worker.qemu.worker');
    expect(eventText(parseMachineReadableLine('1764345600,worker,error,Build was cancelled.')!)).toBe('error: Build was cancelled.');
  });

  it('ignores lines that are not machine-readable', () => {
    expect(parseMachineReadableLine('plain text from a plugin')).toBeUndefined();
    expect(parseMachineReadableLine('')).toBeUndefined();
  });

  it('output lines without ==> are not steps', () => {
    expect(stepOf('    worker.qemu.worker: Selecting previously unselected package etcd-server.')).toBeUndefined();
  });
});
