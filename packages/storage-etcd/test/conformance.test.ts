import { describeAuditStoreConformance, describeStorageConformance } from "@egide/storage-conformance";
import type { AuditingBackend } from "@egide/storage-core";
import { useEtcd } from "./support/etcd-fixture.js";

const etcd = useEtcd();

describeStorageConformance({
  name: "etcd (one member)",
  create: () => etcd.open(),
  destroy: (backend) => etcd.destroy(backend),
  capabilities: { getMany: true, changeFeed: true },
});

describeAuditStoreConformance({
  name: "etcd (one member)",
  create: (): Promise<AuditingBackend> => etcd.open(),
  destroy: (backend) => etcd.destroy(backend),
});
