/* p2p-sharer: dispatch argv to a subcommand; no logic beyond that. */
#include <stdio.h>
#include <string.h>

#include "seed/gen.h"
#ifdef P2P_HAVE_TRACKER
#include "tracker/tracker.h"
#endif
#ifdef P2P_HAVE_NODE
#include "node/node.h"
#endif

static int version_main(int argc, char **argv);
static int help_main(int argc, char **argv);

struct subcommand {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"gen", "gen --filePath FILE [--seedPath DIR] [--tracker HOST:PORT] ...  make a seed file",
     p2p_gen_main},
#ifdef P2P_HAVE_TRACKER
    {"tracker", "tracker [-c FILE]   run the tracker (piece map, heartbeats)", p2p_tracker_main},
#endif
#ifdef P2P_HAVE_NODE
    {"node", "node [-c FILE]      run a node (download, serve, TUS ingest)", p2p_node_main},
#endif
    {"version", "version             print the version", version_main},
    {"help", "help                this text", help_main},
};

static int version_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("p2p-sharer %s\n", P2P_VERSION);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "p2p-sharer %s: peer-to-peer file distribution\n\nUsage:\n", P2P_VERSION);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  p2p-sharer %s\n", subcommands[i].usage);
    fprintf(out, "\nRun 'p2p-sharer <command> --help' for a command's flags.\n");
}

static int help_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return help_main(argc - 1, argv + 1);
    if (strcmp(cmd, "--version") == 0)
        return version_main(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "p2p-sharer: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
