"""Entry point for `mitmdump -s addons/llmitm_addon.py --set llmitm_config=FILE`.

mitmproxy puts this file's folder on sys.path, so the llmitm package beside it imports without an
install; `llmitm run` loads this same file.
"""

from llmitm.addon import Llmitm

addons = [Llmitm()]
