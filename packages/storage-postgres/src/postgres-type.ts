/** The backend type, as configured (`[storage] type`) and as named in error messages. */
export const POSTGRES_TYPE = "postgresql";
