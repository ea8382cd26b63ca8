from restorekit.cli import main

main()
