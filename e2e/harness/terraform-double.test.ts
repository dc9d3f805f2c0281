import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyStack, destroyStack } from './terraform-double.ts';

// The terraform test double must itself be right: order, replacement, destroy.
function stack(dir: string, version: string): void {
  const log = join(dir, 'log');
  const res = (name: string, triggers: Record<string, string>, dependsOn: string[] = []) => ({
    triggers,
    ...(dependsOn.length ? { depends_on: dependsOn } : {}),
    provisioner: [{ 'local-exec': { command: `echo up ${name} >> ${log}` } }, { 'local-exec': { command: `echo down ${name} >> ${log}`, when: 'destroy' } }],
  });
  writeFileSync(
    join(dir, 'cdk.tf.json'),
    JSON.stringify({
      resource: {
        null_resource: {
          'vm-a': res('vm-a', { box: '1' }),
          'vm-b': res('vm-b', { box: version }),
          'config-a': res('config-a', { vm: '${null_resource.vm-a.id}' }),
          'config-b': res('config-b', { vm: '${null_resource.vm-b.id}' }, ['null_resource.config-a']),
        },
      },
    }),
  );
}
const lines = (dir: string) => readFileSync(join(dir, 'log'), 'utf8').trim().split('\n');

describe('terraform test double', () => {
  it('creates in dependency order, replaces what a trigger change reaches, destroys in reverse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfdouble-'));
    stack(dir, '1');
    const first = await applyStack(dir);
    expect(first.created.sort()).toEqual(['config-a', 'config-b', 'vm-a', 'vm-b']);
    const order = lines(dir);
    expect(order.indexOf('up vm-a')).toBeLessThan(order.indexOf('up config-a'));
    expect(order.indexOf('up config-a')).toBeLessThan(order.indexOf('up config-b'));
    expect(order.indexOf('up vm-b')).toBeLessThan(order.indexOf('up config-b'));

    expect((await applyStack(dir)).commands).toEqual([]);

    stack(dir, '2');
    const second = await applyStack(dir);
    expect(second.replaced.sort()).toEqual(['config-b', 'vm-b']);
    expect(second.unchanged.sort()).toEqual(['config-a', 'vm-a']);
    expect(lines(dir).slice(4)).toEqual(['down vm-b', 'up vm-b', 'down config-b', 'up config-b']);

    const destroyed = await destroyStack(dir);
    expect(destroyed.destroyed.at(-1)).toMatch(/^vm-/);
    expect(destroyed.destroyed.indexOf('config-b')).toBeLessThan(destroyed.destroyed.indexOf('config-a'));
  });

  it('fails the apply when a provisioner fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfdouble-'));
    writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify({ resource: { null_resource: { x: { provisioner: [{ 'local-exec': { command: 'exit 3' } }] } } } }));
    await expect(applyStack(dir)).rejects.toThrow();
  });
});
