/** The backend type, as configured (`[storage] type`) and as named in error messages. */
export const SQLITE_TYPE = "sqlite";
