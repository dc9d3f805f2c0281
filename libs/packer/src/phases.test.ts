import { describe, expect, it } from 'vitest';
import { packerPhases } from './phases.ts';

// The step texts are those of a real lab worker bake with Packer 1.6.6 (timestamps from its log).
const WORKER_BAKE = [
  { step: 'Retrieving ISO', at: 0 },
  { step: 'Resizing hard drive...', at: 1 },
  { step: 'Starting VM, booting disk image', at: 1 },
  { step: 'Waiting for SSH to become available...', at: 4 },
  { step: 'Connected to SSH!', at: 48 },
  { step: 'Provisioning with shell script: /tmp/packer-shell3047593360', at: 48 },
  { step: 'Uploading /root/.cache/boxcar/artifacts/sha256/3a94/etcd.deb => /tmp/boxcar/artifacts/etcd.deb', at: 50 },
  { step: 'Provisioning with shell script: scripts/install-debs.sh', at: 53 },
  { step: 'Gracefully halting virtual machine...', at: 109 },
  { step: 'Converting hard drive...', at: 112 },
  { step: 'Running post-processor:  (type vagrant)', at: 147 },
  { step: "Creating Vagrant box for 'libvirt' provider", at: 147 },
];

describe('packerPhases', () => {
  it('splits a run at SSH, at the halt, at the conversion and at the post-processor', () => {
    expect(packerPhases(WORKER_BAKE, 148.3)).toEqual({ boot: 48, provisioning: 61, shutdown: 3, 'disk conversion': 35, 'box packaging': expect.closeTo(1.3, 5) });
  });

  it('without conversion or post-processor, the shutdown runs to the end of packer', () => {
    const steps = WORKER_BAKE.slice(0, 9);
    expect(packerPhases(steps, 112.5)).toEqual({ boot: 48, provisioning: 61, shutdown: 3.5 });
  });

  it('a run that never reached SSH is all boot', () => {
    expect(packerPhases(WORKER_BAKE.slice(0, 4), 1200)).toEqual({ boot: 1200 });
  });
});
