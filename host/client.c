/* placeholder */
#include "config.h"
#include "host/host.h"
