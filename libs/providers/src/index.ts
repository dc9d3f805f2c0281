export * from './accel.ts';
export * from './base-image.ts';
export * from './keys.ts';
export * from './ssh.ts';
export * from './qemu/index.ts';
export * from './vagrant/index.ts';
