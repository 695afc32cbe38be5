/** The storage type of this adapter: `[storage] type = "etcd"`. */
export const ETCD_TYPE = "etcd";
