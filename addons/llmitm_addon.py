"""Entry point for `mitmdump -s addons/llmitm_addon.py --set llmitm_config=FILE`.

mitmproxy puts this file's folder on sys.path, so the llmitm package beside it imports without an
install; `llmitm run` loads this same file.

Order matters (hooks run in list order): the conversation tracker reads each request as the app sent
it, before llmitm rewrites it; the inspector counts what llmitm published once it has.
"""

from llmitm.addon import Llmitm
from llmitm.inspect import ConversationTracker, Inspect

addons = [ConversationTracker(), Llmitm(), Inspect()]
