/* vmshift host: the vmshift command. Everything lives in libvmshift-host so
 * the unit tests can link it; see cli.c. */
#include "config.h"

#include <locale.h>

#include "host/host.h"

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    return host_main(argc, argv);
}
