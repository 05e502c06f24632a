#include "cli.h"
int cli_bench_main(int argc, char **argv) { return 70; }
