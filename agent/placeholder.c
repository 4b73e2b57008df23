/* placeholder */
typedef int agent_placeholder_t;
