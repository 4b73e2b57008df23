/* placeholder until the agent lands */
#include "common/common.h"
int main(void);
int main(void)
{
	return 0;
}
