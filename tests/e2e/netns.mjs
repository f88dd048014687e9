// Network namespaces for the connectivity tests: a small internet the test
// builds with `ip netns` and veth pairs, NAT and firewalls with `nft`, and
// Chromium launched inside a namespace. Everything is created under one
// prefix and removed by `down()`; nothing touches the machine's own network.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Why namespaces cannot be used here, or null when they can: the tests need
 * root (or CAP_NET_ADMIN), `ip` and `nft`.
 * @returns {string | null}
 */
export function unavailable() {
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root, as CI does)';
  for (const tool of ['ip', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      return `\`${tool}\` is missing (scripts/install-test-deps installs it)`;
    }
  }
  const probe = `pnprobe${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

/** Runs a command, throwing with its output when it fails. */
export function run(cmd, args, input) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = /** @type {any} */ (e);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Runs `ip` inside namespace `ns`. */
const ipIn = (ns, ...args) => run('ip', ['-n', ns, ...args]);

/**
 * A set of namespaces sharing a name prefix.
 */
export class Internet {
  /** @param {string} prefix short (namespace names are prefixed with it) */
  constructor(prefix) {
    this.prefix = prefix;
    /** @type {string[]} */
    this.namespaces = [];
    this.dir = mkdtempSync(join(tmpdir(), 'parley-netns-'));
  }

  /** Creates namespace `name` (prefixed) with loopback up; returns its full name. */
  namespace(name) {
    const ns = `${this.prefix}-${name}`;
    spawnSync('ip', ['netns', 'del', ns]);
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    ipIn(ns, 'link', 'set', 'lo', 'up');
    // IPv6 addresses are usable at once, without duplicate address detection.
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return ns;
  }

  /**
   * Links namespaces `a` and `b` with a veth pair named `ifA` / `ifB`, and
   * gives each end its addresses (CIDR strings, IPv4 or IPv6).
   */
  link(a, ifA, addrsA, b, ifB, addrsB) {
    run('ip', ['link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b]);
    for (const [ns, dev, addrs] of [[a, ifA, addrsA], [b, ifB, addrsB]]) {
      for (const addr of addrs) ipIn(ns, ...(addr.includes(':') ? ['-6'] : []), 'addr', 'add', addr, 'dev', dev, 'nodad');
      ipIn(ns, 'link', 'set', dev, 'up');
    }
  }

  /** A default route in `ns` via `gateway` (IPv4 or IPv6). */
  route(ns, gateway) {
    ipIn(ns, ...(gateway.includes(':') ? ['-6'] : []), 'route', 'add', 'default', 'via', gateway);
  }

  /** Lets `ns` forward packets between its links (a router). */
  forward(ns) {
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  }

  /** Loads an nft ruleset into `ns`. */
  nft(ns, rules) {
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], rules);
  }

  /**
   * A script that runs Chromium inside `ns`, for playwright's `executablePath`.
   * @param {string} ns
   * @param {string} chromium
   */
  chromiumIn(ns, chromium) {
    const path = join(this.dir, `chromium-${ns}`);
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${chromium} "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  }

  /** Removes every namespace (and with them their links and rules). */
  down() {
    for (const ns of this.namespaces.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    this.namespaces = [];
    rmSync(this.dir, { recursive: true, force: true });
  }
}
