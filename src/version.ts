/** imgtool's version, embedded in the binary and printed by `imgtool --version`. */
export const VERSION = "0.1.0";
