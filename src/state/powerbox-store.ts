/**
 * The powerbox's records in ferry.db: VMs and grants.
 */

import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';
import type { Store } from './store.js';

/** VmRecord is a VM the powerbox reaches over SSH. */
export interface VmRecord {
  readonly name: string;
  readonly backend: 'ssh';
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** The private key ferry logs in with. */
  readonly keyFile: string;
  /** The guest's host key, pinned when the VM was added (base64 of the key blob). */
  readonly hostKey: string;
  /** The guest user's home directory, for guest paths given relative to it. */
  readonly guestHome: string;
  readonly createdAt: number;
}

export type GrantState = 'active' | 'cleanup' | 'revoked';

/** GrantRecord is a host file or directory granted into a VM. */
export interface GrantRecord {
  readonly id: number;
  readonly vm: string;
  readonly hostPath: string;
  readonly guestPath: string;
  readonly kind: 'file' | 'dir';
  readonly readOnly: boolean;
  /** What the guest may bring to the host through this grant. */
  readonly limits: Limits;
  readonly state: GrantState;
  readonly session: number | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

interface VmRow {
  name: string;
  backend: 'ssh';
  user: string;
  host: string;
  port: number;
  key_file: string;
  host_key: string;
  guest_home: string;
  created_at: number;
}

interface GrantRow {
  id: number;
  vm: string;
  host_path: string;
  guest_path: string;
  kind: 'file' | 'dir';
  read_only: number;
  limits: string;
  state: GrantState;
  session: number | null;
  created_at: number;
  revoked_at: number | null;
}

function vmFromRow(r: VmRow): VmRecord {
  return { name: r.name, backend: r.backend, user: r.user, host: r.host, port: r.port, keyFile: r.key_file, hostKey: r.host_key, guestHome: r.guest_home, createdAt: r.created_at };
}

function grantFromRow(r: GrantRow): GrantRecord {
  return {
    id: r.id,
    vm: r.vm,
    hostPath: r.host_path,
    guestPath: r.guest_path,
    kind: r.kind,
    readOnly: r.read_only !== 0,
    limits: { ...DEFAULT_LIMITS, ...(JSON.parse(r.limits) as Partial<Limits>) },
    state: r.state,
    session: r.session,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}

/** PowerboxStore reads and writes VMs and grants. */
export class PowerboxStore {
  constructor(readonly store: Store) {}

  vms(): VmRecord[] {
    return (this.store.db.prepare('SELECT * FROM vms ORDER BY name').all() as VmRow[]).map(vmFromRow);
  }

  vm(name: string): VmRecord | undefined {
    const row = this.store.db.prepare('SELECT * FROM vms WHERE name = ?').get(name) as VmRow | undefined;
    return row === undefined ? undefined : vmFromRow(row);
  }

  addVm(vm: Omit<VmRecord, 'createdAt'>): VmRecord {
    this.store.db
      .prepare('INSERT INTO vms (name, backend, user, host, port, key_file, host_key, guest_home, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(vm.name, vm.backend, vm.user, vm.host, vm.port, vm.keyFile, vm.hostKey, vm.guestHome, Date.now());
    return this.vm(vm.name) as VmRecord;
  }

  removeVm(name: string): void {
    this.store.db.prepare('DELETE FROM vms WHERE name = ?').run(name);
  }

  /** grants lists grants, newest last; revoked ones only when asked. */
  grants(options: { vm?: string; includeRevoked?: boolean } = {}): GrantRecord[] {
    const rows = this.store.db.prepare('SELECT * FROM grants ORDER BY id').all() as GrantRow[];
    return rows
      .map(grantFromRow)
      .filter((g) => (options.vm === undefined || g.vm === options.vm) && (options.includeRevoked === true || g.state !== 'revoked'));
  }

  grant(id: number): GrantRecord | undefined {
    const row = this.store.db.prepare('SELECT * FROM grants WHERE id = ?').get(id) as GrantRow | undefined;
    return row === undefined ? undefined : grantFromRow(row);
  }

  addGrant(g: { vm: string; hostPath: string; guestPath: string; kind: 'file' | 'dir'; readOnly: boolean; limits: Partial<Limits> }): GrantRecord {
    const info = this.store.db
      .prepare("INSERT INTO grants (vm, host_path, guest_path, kind, read_only, limits, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)")
      .run(g.vm, g.hostPath, g.guestPath, g.kind, g.readOnly ? 1 : 0, JSON.stringify(g.limits), Date.now());
    return this.grant(Number(info.lastInsertRowid)) as GrantRecord;
  }

  setGrantSession(id: number, session: number): void {
    this.store.db.prepare('UPDATE grants SET session = ? WHERE id = ?').run(session, id);
  }

  setGrantState(id: number, state: GrantState): void {
    this.store.db.prepare('UPDATE grants SET state = ?, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(state, state === 'active' ? null : Date.now(), id);
  }

  /** forgetGrant removes a grant that never came to be (its first sync failed). */
  forgetGrant(id: number): void {
    this.store.db.prepare('DELETE FROM grants WHERE id = ?').run(id);
  }
}
