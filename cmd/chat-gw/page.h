/* page: the browser client chat-gw serves at / (page.c). */
#ifndef CHAT_GW_PAGE_H
#define CHAT_GW_PAGE_H

extern const char page_html[];

#endif
