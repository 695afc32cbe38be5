/** The backend type, as configured (`[storage] type = "__TYPE__"`) and as named in error messages. */
export const __CONST___TYPE = "__TYPE__";
