/* TODO: being written */
#include "common/common.h"
